"""``hookshop stock ...``: the warehouse from the command line (receive, transfer, adjust, count, labels,
reconcile). Each command calls the same service the REST API calls, in one transaction; long work shows a
progress bar on standard error, and errors say what to do next."""

from __future__ import annotations

import click


@click.group("stock")
def stock_group():
    """Warehouse work: receive, transfer, adjust, count, labels, reconcile."""
