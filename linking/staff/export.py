"""The dashboard's figures as CSV, safe to open in a spreadsheet."""

import csv
from io import StringIO

from django.utils.translation import gettext as _

from linking.models import Proof
from linking.spreadsheet import safe_cell
from linking.staff.stats import Dashboard


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}%"


def dashboard_csv(board: Dashboard) -> str:
    out = StringIO()
    writer = csv.writer(out)

    def row(*cells: object) -> None:
        writer.writerow([safe_cell(cell) for cell in cells])

    row(_("Period"), board.start.isoformat(), board.end.isoformat())
    row()
    row(_("Service"), _("Legacy accounts"), _("Linked"), _("Link rate"))
    for figures in board.services:
        row(figures.service.name, figures.accounts, figures.linked, _rate(figures.rate))
    row(_("Total"), board.totals.accounts, board.totals.linked, _rate(board.totals.rate))
    for title, periods in ((_("Day"), board.days), (_("Week from"), board.weeks)):
        row()
        row(title, _("Links"), _("Unlinks"), _("Legacy accounts"), _("Linked"), _("Link rate"))
        for p in periods:
            row(p.start.isoformat(), p.links, p.unlinks, p.accounts, p.linked, _rate(p.rate))
    row()
    row(_("Proof"), _("Links"))
    labels = dict(Proof.choices)
    for proof, count in board.proofs.items():
        row(str(labels.get(proof, proof)), count)
    row()
    row(
        _("Campaign"),
        _("Step"),
        _("Channel"),
        _("Audience"),
        _("Sent"),
        _("Unconfirmed"),
        _("Failed"),
        _("Clicked"),
        _("Linked through the campaign"),
        _("Unsubscribed"),
        _("Bounced"),
        _("Click rate"),
        _("Link rate"),
        _("Clicked to linked"),
    )
    for f in board.funnel:
        row(
            f.campaign_name,
            f.step,
            f.channel_label,
            f.audience,
            f.sent,
            f.unconfirmed,
            f.failed,
            f.clicked,
            f.linked,
            f.unsubscribed,
            f.bounced,
            _rate(f.click_rate),
            _rate(f.link_rate),
            _rate(f.click_to_link),
        )
    row()
    row(_("Channel"), _("Reached"), _("Clicked"), _("Linked through the campaign"))
    for c in board.channels:
        row(c.label, c.reached, c.clicked, c.linked, _rate(c.click_rate), _rate(c.link_rate))
    return out.getvalue()
