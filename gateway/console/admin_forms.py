"""Forms of the administrators' and data stewards' pages: the catalogue's refusals shown
against the fields they concern, with what the user typed kept.

A :class:`~exchange.core.errors.ValidationError` (and its
:class:`~exchange.core.errors.DisclosureRuleError`) names each problem as
``(field, reason_code, message)``, the field a path of the API's body
(``fields.resident_id``, ``row_constraints.division_prefix``, ``purposes``, ``days``).
The console's forms name their controls with the same paths, so a problem lands next to
its control; a problem whose field no control of the form holds is listed at the top.
Any other refusal (a conflict, a role refused) is shown at the top.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from exchange.core.errors import AuthenticationError, ExchangeError, ValidationError
from gateway.console import i18n, web
from gateway.console.i18n import N_
from gateway.problems import note_error, status_for

# What the catalogue's reason codes mean, in words a translator can carry; the message
# itself (which names the field, the value, the dataset) is shown after it.
REASONS: dict[str, str] = {
    "grant.department_missing": N_("Name the department."),
    "grant.role_unknown": N_("This role does not exist."),
    "grant.role_not_grantee": N_("Only caseworkers read records: grants are for them."),
    "grant.fields_missing": N_("Choose at least one field."),
    "grant.field_unknown": N_("The dataset has no such field."),
    "grant.mode_invalid": N_("A field is granted in full or masked."),
    "grant.purposes_missing": N_("Choose at least one purpose."),
    "grant.purpose_unknown": N_("No such purpose."),
    "grant.purpose_inactive": N_("This purpose has been deactivated."),
    "grant.constraint_unknown": N_("Unknown row constraint."),
    "grant.constraint_invalid": N_("This row constraint cannot be used here."),
    "grant.validity_invalid": N_("The end must come after the start."),
    "dataset.unknown": N_("No such dataset."),
    "request.legal_basis_missing": N_("State the legal basis."),
    "request.justification_missing": N_("Say why the data is needed."),
    "request.too_long": N_("This text is too long."),
    "request.duration_invalid": N_("A request lasts 1 to 1,095 days."),
    "request.purpose_repeated": N_("A purpose is named twice."),
    "request.dataset_not_in_catalogue": N_("This dataset is not in the resource catalogue."),
    "request.not_shared": N_("Its owner does not share this dataset."),
    "request.reason_missing": N_("Say why it is refused."),
    "request.status_unknown": N_("Unknown status."),
    "narrow.fields_missing": N_("Grant at least one field."),
    "narrow.field_added": N_("This field was not asked for."),
    "narrow.mode_invalid": N_("A field is granted in full or masked."),
    "narrow.field_widened": N_("This field was asked masked: it cannot be granted in full."),
    "narrow.constraint_dropped": N_("A row constraint that was asked for must be kept."),
    "narrow.constraint_widened": N_("The row constraint admits rows the one asked does not."),
    "narrow.days_widened": N_("A grant cannot last longer than asked."),
    "resource.department_unknown": N_("No such department."),
    "resource.owner_missing": N_("A new entry names its owner department."),
    "resource.title_missing": N_("A title is needed."),
    "resource.frequency_missing": N_("Say how often it is updated."),
    "resource.frequency_invalid": N_("Unknown update frequency."),
    "resource.sharing_missing": N_("Say how it is shared."),
    "resource.sharing_invalid": N_("Unknown sharing type."),
    "resource.too_long": N_("This text is too long."),
    "resource.field_unknown": N_("The dataset has no such field."),
    "purpose.code_invalid": N_("Not a usable purpose code."),
    "purpose.title_missing": N_("A purpose needs a title."),
    "purpose.case_ref_pattern_invalid": N_("Not a usable regular expression."),
    "department.code": N_("Not a usable department code."),
    "department.name": N_("The department needs a name."),
    "user.username": N_("Not a usable user name."),
    "user.role": N_("Unknown role."),
    "user.department": N_("No such department."),
    "user.oidc_subject": N_("The single sign-on subject is empty."),
    "key.expires_at": N_("The expiry is in the past."),
    "period.empty": N_("The start must come before the end."),
    "period.too_long": N_("A period lasts at most ten years."),
    "period.malformed": N_("Not a date."),
    "period.no_zone": N_("Give the time zone."),
    "disclosure.identifier_style": N_(
        "This identifier may be shown masked only by a style that shows none of it."
    ),
    "disclosure.name_style": N_("This masking would show a part of the name whole."),
    "disclosure.identifier_candidates": N_(
        "With the other fields shown, the masked identifier could be rebuilt."
    ),
}

# Words the pages show from the catalogue's values (``_(value)`` in the templates).
VALUES = (
    N_("public"),
    N_("internal"),
    N_("personal"),
    N_("sensitive"),
    N_("submitted"),
    N_("approved"),
    N_("narrowed"),
    N_("refused"),
    N_("withdrawn"),
    N_("unconditional"),
    N_("conditional"),
    N_("not_shared"),
    N_("realtime"),
    N_("daily"),
    N_("weekly"),
    N_("monthly"),
    N_("quarterly"),
    N_("yearly"),
    N_("submit"),
    N_("approve"),
    N_("narrow"),
    N_("refuse"),
    N_("withdraw"),
    N_("renew"),
    N_("full"),
    N_("masked"),
)


@dataclass
class Problems:
    """A refusal laid out for a form: messages by control name, and the rest."""

    by_field: dict[str, str] = field(default_factory=dict)
    unplaced: list[str] = field(default_factory=list)


def explain(code: str, message: str, _: Callable[[str], str]) -> str:
    """The message of a problem, after its translated meaning when there is one."""
    meaning = REASONS.get(code)
    if meaning is None:
        return message
    said = _(meaning)
    return message if said == meaning else f"{said}（{message}）"


def problems(exc: ExchangeError, controls: Collection[str], _: Callable[[str], str]) -> Problems:
    """Place each problem of ``exc`` against the control of the same name (a problem on
    ``fields.X`` with no control of that name goes to ``fields``), the rest at the top."""
    found = Problems()
    if not isinstance(exc, ValidationError):
        return found
    for where, code, message in exc.reasons:
        target = where if where in controls else None
        if target is None and "." in where and where.split(".", 1)[0] in controls:
            target = where.split(".", 1)[0]
        text = explain(code, message, _)
        if target is None:
            found.unplaced.append(text)
        elif target in found.by_field:
            found.by_field[target] += " " + text
        else:
            found.by_field[target] = text
    return found


def form_refused(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    exc: ExchangeError,
    controls: Collection[str],
) -> Response:
    """The form shown again, as the user filled it in (``context``), with the refusal: each
    problem against its control, the error's translated title at the top with the problems
    no control holds (or the whole message, for a refusal that is not about the fields).
    Its status is the one audited."""
    if isinstance(exc, AuthenticationError):
        return web.refusal(request, exc)
    _ = web.gettext(request)
    laid_out = problems(exc, controls, _)
    note_error(request, exc.message)
    placed = bool(laid_out.by_field)
    detail = _("The problems are shown against the fields below.") if placed else exc.message
    return web.render(
        request,
        template,
        {
            **context,
            "errors": laid_out.by_field,
            "error": {
                "title": i18n.error_title(exc.code, _),
                "detail": detail,
                "code": exc.code,
                "more": laid_out.unplaced if placed else [],
            },
        },
        status=status_for(exc),
    )


__all__ = ["REASONS", "Problems", "explain", "form_refused", "problems"]
