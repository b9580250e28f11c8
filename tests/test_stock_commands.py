"""``hookshop stock receive|adjust|count``: the services from the command line, errors saying what to do."""

from __future__ import annotations

import json

from conftest import product, stock_of


def cli(app, *args):
    return app.test_cli_runner().invoke(args=["stock", *args])


def test_receive_adjust_and_count_from_the_command_line(app, api, tmp_path):
    product(api, "MUG")
    product(api, "PHONE", track_serials=True)
    result = cli(app, "receive", "MUG", "--quantity", "4", "--reference", "delivery 7")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["on_hand"] == 4
    serials = tmp_path / "serials.txt"
    serials.write_text("P1\nP2\n\nP3\n")
    result = cli(app, "receive", "PHONE", "--serials-file", str(serials))
    assert result.exit_code == 0 and json.loads(result.stdout)["on_hand"] == 3, result.output
    result = cli(app, "adjust", "MUG", "--quantity", "-1", "--reason", "damage", "--staff", "ann", "--note", "wet")
    assert result.exit_code == 0 and json.loads(result.stdout)["stock"]["on_hand"] == 3, result.output
    result = cli(app, "adjust", "PHONE", "--serials", "P3", "--reason", "loss", "--staff", "ann")
    assert result.exit_code == 0 and json.loads(result.stdout)["serials"] == ["P3"], result.output

    result = cli(app, "count", "open", "MAIN", "--staff", "cy")
    assert result.exit_code == 0, result.output
    count_id = json.loads(result.stdout)["id"]
    scans = tmp_path / "scans.txt"
    scans.write_text("MUG\nMUG\nP1\nP2\n")
    result = cli(app, "count", "scan", str(count_id), "MUG", "--file", str(scans), "--batch", "2")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["differences"] == 0
    shown = json.loads(cli(app, "count", "show", str(count_id)).stdout)
    assert {ln["sku"]: ln["counted"] for ln in shown["lines"]} == {"MUG": 3, "PHONE": 2}
    result = cli(app, "count", "post", str(count_id), "--staff", "cy")
    assert result.exit_code == 0 and json.loads(result.stdout)["status"] == "posted", result.output
    assert cli(app, "reconcile").exit_code == 0


def test_errors_say_what_to_do_and_exit_non_zero(app, api):
    product(api, "MUG")
    result = cli(app, "adjust", "MUG", "--quantity", "-1", "--reason", "loss", "--staff", "ann")
    assert result.exit_code == 1 and "only 0 of MUG available" in result.stderr, result.output
    result = cli(app, "receive", "NOPE", "--quantity", "1")
    assert result.exit_code == 1 and "unknown sku 'NOPE'" in result.stderr
    result = cli(app, "receive", "MUG")
    assert result.exit_code == 2 and "give --quantity" in result.stderr
    result = cli(app, "count", "post", "99", "--staff", "cy")
    assert result.exit_code == 1 and "no stock count 99" in result.stderr
    result = cli(app, "count", "open", "MAIN", "--staff", "cy")
    count_id = json.loads(result.stdout)["id"]
    result = cli(app, "count", "scan", str(count_id), "MUG", "NOPE")
    assert result.exit_code == 1 and "nothing was recorded" in result.stderr and "NOPE" in result.stderr
    result = cli(app, "count", "cancel", str(count_id), "--staff", "cy")
    assert result.exit_code == 0
    assert stock_of(api, "MUG")["on_hand"] == 0
