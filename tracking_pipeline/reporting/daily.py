"""The daily report (seed 004's daily email): HTML from an autoescaped Jinja2 template, a plain-text part, and
delivery by SMTP.

SMTP is configured from the environment only: TRACKING_SMTP_URL (`smtp://host[:port]`, `smtp+starttls://...`
or `smtps://...`, with `user:password@` when the server wants a login) and TRACKING_REPORT_TO (comma-separated
addresses); TRACKING_REPORT_FROM sets the sender. The password is never logged nor put in an error message:
`SmtpSettings.describe()` shows the server without credentials.
"""

from __future__ import annotations

import math
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

import jinja2

SMTP_URL_ENV, REPORT_TO_ENV, REPORT_FROM_ENV = "TRACKING_SMTP_URL", "TRACKING_REPORT_TO", "TRACKING_REPORT_FROM"
DEFAULT_SENDER = "tracking-pipeline@localhost"
SMTP_TIMEOUT_S = 30.0
PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
TEMPLATES = Path(__file__).parent / "templates"


class ReportDeliveryError(RuntimeError):
    """The report could not be sent; the message names the server, never its credentials."""


def _pct(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{float(value) * 100:+.{digits}f}%" if digits else f"{float(value) * 100:.0f}%"


def _num(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{float(value):,.{digits}f}"


def _sign(value: object) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or float(value) == 0:
        return ""
    return "pos" if float(value) > 0 else "neg"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, num=_num, sign=_sign)
    return env


def render_daily_report(report: dict) -> str:
    """The report's HTML page; every value is escaped (portfolio names, reasons and tickers may hold anything)."""
    return _environment().get_template("daily_report.html.j2").render(r=report)


def text_summary(report: dict) -> str:
    """A short plain-text version for mail clients without HTML."""
    lines = [f"Daily report {report['day']}: {report['status'] or 'n/a'}", ""]
    for p in report["portfolios"]:
        lines.append(f"{p['portfolio']} / {p['variant']}: day {_pct(p['daily_return'])}, "
                     f"YTD {_pct(p['ytd_return'])}")
    lines.append(f"Trades: {len(report['opened'])} opened, {len(report['closed'])} closed, "
                 f"{report['open_count']} open")
    for a in report["alerts"]:
        lines.append(f"ALERT {a['status']} {a['strategy']} / {a['stock_type']}: {a['reasons']}")
    lines.append(f"Volume-spike candidates: {', '.join(c['ticker'] for c in report['candidates']) or 'none'}")
    lines.append(f"System health: {report['health_status'] or 'n/a'}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SmtpSettings:
    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    sender: str
    recipients: tuple[str, ...]

    def describe(self) -> str:
        """The server, safe to log."""
        return f"{self.scheme}://{self.host}:{self.port}"


def smtp_settings(environ: dict[str, str] | None = None) -> SmtpSettings | None:
    """The SMTP settings when TRACKING_SMTP_URL and TRACKING_REPORT_TO are both set, else None; a malformed value
    is a ValueError naming the variable (not its value, which may hold a password)."""
    environ = dict(os.environ) if environ is None else environ
    url, to = environ.get(SMTP_URL_ENV, "").strip(), environ.get(REPORT_TO_ENV, "").strip()
    if not url or not to:
        return None
    parts = urlsplit(url)
    if parts.scheme not in PORTS or not parts.hostname:
        raise ValueError(f"{SMTP_URL_ENV} must be smtp://, smtp+starttls:// or smtps:// followed by a host "
                         f"(got a {parts.scheme or 'scheme-less'} URL)")
    try:
        port = parts.port or PORTS[parts.scheme]
    except ValueError as exc:
        raise ValueError(f"{SMTP_URL_ENV} has an invalid port") from exc
    recipients = tuple(a.strip() for a in to.split(",") if a.strip())
    if not recipients or any("@" not in a for a in recipients):
        raise ValueError(f"{REPORT_TO_ENV} must list e-mail addresses separated by commas")
    return SmtpSettings(parts.scheme, parts.hostname, port, unquote(parts.username) if parts.username else None,
                        unquote(parts.password) if parts.password else None,
                        environ.get(REPORT_FROM_ENV, "").strip() or DEFAULT_SENDER, recipients)


def build_message(settings: SmtpSettings, subject: str, html: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, settings.sender, ", ".join(settings.recipients)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send_report(settings: SmtpSettings, subject: str, html: str, text: str) -> None:
    """Send the report as a text + HTML e-mail; any failure is a ReportDeliveryError naming the server only."""
    message = build_message(settings, subject, html, text)
    try:
        if settings.scheme == "smtps":
            client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=SMTP_TIMEOUT_S,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT_S)
        with client:
            if settings.scheme == "smtp+starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.username:
                client.login(settings.username, settings.password or "")
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        detail = str(exc)
        if settings.password:
            detail = detail.replace(settings.password, "***")
        raise ReportDeliveryError(f"daily report not sent via {settings.describe()} to "
                                  f"{len(settings.recipients)} recipient(s): {type(exc).__name__}: {detail}") from None
