"""List the console's message ids that the Chinese catalogues do not translate yet.

    .venv/bin/python scripts/console-messages.py            # the missing ids, one a line
    .venv/bin/python scripts/console-messages.py --po AREA   # the same as .po entries to fill in

The ids are found as tests/unit/test_console_i18n.py finds them (gateway.console.messages).
"""

from __future__ import annotations

import sys

from gateway.console import i18n, messages


def main() -> int:
    missing = sorted(messages.used() - i18n.catalogue_ids("zh"))
    as_po = "--po" in sys.argv
    for message in missing:
        if as_po:
            escaped = message.replace("\\", "\\\\").replace('"', '\\"')
            print(f'msgid "{escaped}"\nmsgstr ""\n')
        else:
            print(message)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
