"""How long typed text may be, and what an email address is: one rule for the web forms
and the CLI, so a value one refuses is never saved by the other.

The lengths are characters (what a person counts), chosen so that a table stays readable
and a row stays small: a name is a line, a description a paragraph, instructions a long
document. An email is checked for syntax only (no DNS lookup): the domain must hold a
dot, so `a@b` and `x@` are refused.
"""

from __future__ import annotations

from agenthost.errors import InvalidRequest

NAME_CHARS = 200
DESCRIPTION_CHARS = 2_000
INSTRUCTIONS_CHARS = 100_000
MODEL_CHARS = 200  # the width of the model columns
NOTE_CHARS = 500  # the width of a transaction's note
EMAIL_CHARS = 254  # RFC 5321's path limit less the angle brackets
PASSWORD_MIN_CHARS = 8
# Far above any password a person types; keeps hashing a pasted megabyte off the server.
PASSWORD_MAX_CHARS = 1_024


def invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_value", param=param)


def check_length(value: str, most: int, param: str, label: str) -> str:
    """`value` unchanged, or InvalidRequest naming its length and the bound."""
    if len(value) > most:
        raise invalid(f"{label} is too long: {len(value):,} characters, at most {most:,}.", param)
    return value


def check_name(value: str, param: str = "name", label: str = "The name") -> str:
    if not value:
        raise invalid(f"{label} is required (up to {NAME_CHARS} characters).", param)
    return check_length(value, NAME_CHARS, param, label)


def check_description(value: str, param: str = "description") -> str:
    return check_length(value, DESCRIPTION_CHARS, param, "The description")


def check_instructions(value: str, param: str = "instructions") -> str:
    return check_length(value, INSTRUCTIONS_CHARS, param, "The instructions")


def check_model(value: str, param: str = "model") -> str:
    return check_length(value, MODEL_CHARS, param, "The model")


def check_note(value: str, param: str = "note") -> str:
    return check_length(value, NOTE_CHARS, param, "The note")


def check_password(value: str, param: str = "password") -> str:
    if not PASSWORD_MIN_CHARS <= len(value) <= PASSWORD_MAX_CHARS:
        raise invalid(
            f"A password needs at least {PASSWORD_MIN_CHARS} characters "
            f"(at most {PASSWORD_MAX_CHARS:,}).",
            param,
        )
    return value


def check_email(value: str, param: str = "email") -> str:
    """The address trimmed and lower-cased (as users are stored), if its syntax is valid."""
    value = value.strip()
    if len(value) > EMAIL_CHARS:
        raise invalid(
            f"The email is too long: {len(value):,} characters, at most {EMAIL_CHARS}.", param
        )
    # Imported here: it compiles its grammar at import (~0.1 s), which every CLI command
    # would otherwise pay.
    import email_validator
    from email_validator import EmailNotValidError, validate_email

    # Organisations run mail on internal `.local` domains; the library's documented list of
    # refused special-use names is trimmed for that (`.test` is allowed by the flag below).
    if "local" in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        email_validator.SPECIAL_USE_DOMAIN_NAMES.remove("local")
    try:
        validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise invalid(f"Not a valid email address: {exc}", param) from None
    return value.lower()
