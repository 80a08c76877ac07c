# ruff: noqa: E501  (one message a line: the table reads as the catalogue does)
"""The connectors' rejection reasons in plain words, by their stable code
(docs/connectors.md, "Rejection reasons"), for the publisher's pages.

The ids are English; the Chinese catalogue ``locale/zh/errors.po`` translates them. A
connector's own message (in English, written where the row was rejected) is shown
beside the reason's text: it names the value or the codes known where it safely can.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.console.i18n import N_, reason_text

REASON_TEXTS: dict[str, str] = {
    # The row and its key (connectors/sources.py, connectors/pipeline.py)
    "csv.malformed": N_("The CSV parser could not read the row: re-export the file and check its quoting."),
    "encoding.invalid_bytes": N_("The row holds bytes that are not valid in the declared encoding: re-export the file in that encoding, or declare the file's real encoding."),
    "columns.count": N_("The row has more or fewer cells than the header: fix its delimiters or quoting."),
    "json.invalid": N_("The line is not a valid JSON object: each line must be one object."),
    "key.missing": N_("The record id (the key column) is empty: fill in the department's record id."),
    "key.duplicate": N_("An earlier row of the source has the same record id: keep one row per record."),
    "changed_at.invalid": N_("The change time is not an ISO 8601 time: export it as one, or leave it empty if unknown."),
    "avro.encode": N_("The record could not be encoded with the standard's schema: report it to the data exchange team with the line."),
    # Mapping (connectors/mapping.py)
    "column.missing": N_("A column the definition reads is not in the row: fix the column's name in the definition or the export's header."),
    "required.missing": N_("A required field is empty: fill in the value in the source, or give the field a default."),
    "code.unknown": N_("The value is not in the field's code table: correct the value, or add the code to the table."),
    "date.invalid": N_("The value is not a real date in any of the field's date formats: correct the date, or add the export's format."),
    "enum.unknown": N_("The value is not one of the standard's values for this field: map the department's codes to them."),
    "type.integer": N_("The value is not a whole number."),
    "type.number": N_("The value is not a number."),
    "type.boolean": N_("The value is not yes or no (true/1/yes/y/是, false/0/no/n/否)."),
    "name.unsplittable": N_("The full name has one part only and cannot be split into family and given name."),
    "scale.not_integral": N_("The amount times its scale is not a whole number: check its decimal places."),
    "type.range": N_("The scaled value is too large for the field: check the amount and the scale."),
    "size.too_long": N_("The text is longer than 512 characters: check that the column is the right one."),
    # Validators (schemas/validators.py)
    "resident_id.length": N_("The resident ID number is not 18 characters long: re-type it from the ID card (convert an old 15-digit number)."),
    "resident_id.charset": N_("The resident ID number holds a character that is not a digit (or X at the end): re-type it from the ID card."),
    "resident_id.division": N_("The resident ID number does not start with a province's code: re-type it from the ID card."),
    "resident_id.birth_date": N_("The birth date inside the resident ID number is not a real date: re-type it from the ID card."),
    "resident_id.check_character": N_("The last character of the resident ID number does not match its check: re-type it from the ID card."),
    "division_code.format": N_("The division code is not exactly 6 digits."),
    "division_code.unknown": N_("The division code is not in the national list of division codes (GB/T 2260)."),
    "division_code.retired": N_("The division code has been retired (the record is published, and flagged)."),
    "postcode.format": N_("The postcode is not a valid postcode: use half-width characters, or leave it empty."),
    "phone.format": N_("The phone number is not a mainland mobile or fixed-line number: correct it, or leave it empty."),
    "uscc.length": N_("The unified social credit code is not 18 characters long: copy it from the business licence."),
    "uscc.charset": N_("The unified social credit code holds a character it cannot hold: use upper case (I, O, Z, S, V are probably digits)."),
    "uscc.check_character": N_("The last character of the unified social credit code does not match its check: copy it from the business licence."),
    "date.format": N_("The date is not written YYYY-MM-DD with half-width digits."),
    "date.impossible": N_("The date does not exist: check the day and the month."),
}  # fmt: skip

# How a run ended (connector_runs.status), as shown.
RUN_STATUSES: dict[str, str] = {
    "complete": N_("complete"),
    "running": N_("running or interrupted"),
}


def reason(code: str, _: Callable[[str], str]) -> str:
    """The translated text of a rejection reason (the code itself if unknown)."""
    return reason_text(code, REASON_TEXTS, _)


def run_status(status: str, _: Callable[[str], str]) -> str:
    return reason_text(status, RUN_STATUSES, _)
