"""The demo's terminal picture: numbers and names appear, names are never markup."""

from __future__ import annotations

from rich.console import Console

from heatmap.demo.board import Board
from heatmap.demo.view import (
    BAR_WIDTH,
    RunView,
    ServiceView,
    concentration_bar,
    concentration_colour,
    heat_colour,
    screen,
    status_line,
)
from heatmap.engine.alerts import AlertMonitor, AlertThresholds
from support.demo_messages import alert, cluster, frame, position

RUN = RunView(source="replay", speed=3600, live_url="http://127.0.0.1:9402/live",
              snapshot_dir="demo-snapshots", snapshots=4, elapsed_s=33, duration_s=120,
              input_done=False)
SERVICES = [ServiceView("sink", True, True, "lag 0 records, 1,234 frames stored"),
            ServiceView("process", True, None, ""),
            ServiceView("ingest", False, None, "finished")]


def _text(board: Board, width: int = 160, height: int = 60) -> str:
    console = Console(width=width, record=True, force_terminal=True, color_system="truecolor")
    console.print(screen(board, RUN, SERVICES, height=height))
    return console.export_text()


def _board() -> Board:
    board = Board("1h")
    board.add_frame(frame(positions=(position("ETHUSDT", 0.35, 0.9),
                                     position("LTCUSDT", 0.12, 0.4),
                                     position("XLMUSDT", -0.08, 0.3, "XLMUSDT")),
                          clusters=(cluster("ETHUSDT", 0.31, ("LTCUSDT",)),
                                    cluster("XLMUSDT", 0.08))))
    board.add_frame(frame(account=None, desk="alpha",
                          clusters=(cluster("ETHUSDT", 0.27, liq_sigma=0.7),)))
    board.add_alert(alert())
    return board


def test_numbers_and_names_appear() -> None:
    text = _text(_board())
    for expected in ("acct-a1", "alpha (desk)", "ETHUSDT", "LTCUSDT", "XLMUSDT", "+35.0%",
                     "-8.0%", "90.0%", "31.0%", "0.7 σ", "2.5 σ", "critical",
                     "cluster_concentration", "http://127.0.0.1:9402/live", "replay at 3600x",
                     "event time 2018-01-16 12:00:00 UTC", "lag 0 records", "finished",
                     "positions by heat (3 of 3)", "alerts firing (1)"):
        assert expected in text, expected


def test_positions_are_hottest_first_and_hedges_last() -> None:
    text = _text(_board())
    assert text.index("+35.0%") < text.index("+12.0%") < text.index("-8.0%")


def test_names_print_as_written_never_as_markup() -> None:
    board = Board("1h")
    hostile = "[bold]x"
    board.add_frame(frame(account=hostile, desk="東京 <script>",
                          positions=(position("币安人生USDT", 0.22, 0.5, "[red]c[/red]"),
                                     position("<script>alert(1)</script>", 0.1, 0.2)),
                          clusters=(cluster("[red]c[/red]", 0.22, ("币安人生USDT",)),)))
    board.add_frame(frame(account=None, desk="東京 <script>"))
    board.add_alert(alert(account=hostile, subject="[link=http://x]y[/link]"))
    text = _text(board)
    for name in (hostile, "币安人生USDT", "<script>alert(1)</script>", "[red]c[/red]",
                 "東京 <script> (desk)", "[link=http://x]y[/link]"):
        assert name in text, name


def test_a_closed_alert_leaves_the_table() -> None:
    board = _board()
    board.add_alert(alert(state="resolved"))
    assert "alerts firing (0)" in _text(board)


def test_a_small_terminal_shows_the_hottest_rows_only() -> None:
    board = Board("1h")
    board.add_frame(frame(positions=tuple(position(f"S{i:02d}", i / 100, 0.1)
                                          for i in range(40))))
    text = _text(board, height=30)
    assert "S39" in text and "S00" not in text
    assert "of 40)" in text


def test_concentration_bar_draws_both_lines_and_overflows_with_an_arrow() -> None:
    low = concentration_bar(0.05).plain
    assert len(low) == BAR_WIDTH and low.count("│") == 2
    high = concentration_bar(0.9).plain
    assert high.endswith("▶") and high.count("│") == 2
    # SPEC's lines sit in the cells reaching 20 % and 25 % of a 0..50 % bar.
    assert [i for i, c in enumerate(low) if c == "│"] == [9, 11]
    # At exactly 25 % the bar fills through the 25 % line.
    assert concentration_bar(0.25).plain[: BAR_WIDTH // 2].count("·") == 0


def test_heat_colours_run_from_blue_hedges_to_red_heat() -> None:
    hot = heat_colour(1.0, 1.0).get_truecolor()
    cold = heat_colour(-1.0, 1.0).get_truecolor()
    assert hot.red > hot.blue and cold.blue > cold.red
    assert heat_colour(float("nan"), 1.0) == heat_colour(0.0, 1.0)


def test_status_line_is_plain_text() -> None:
    line = status_line(_board(), RUN, SERVICES)
    assert "\n" not in line
    for expected in ("event 2018-01-16 12:00:00", "frames 2", "alerts firing 1",
                     "hottest acct-a1/ETHUSDT K 31.0%", "sink healthy", "process starting",
                     "ingest finished"):
        assert expected in line, expected


def test_each_desk_is_drawn_against_its_own_lines() -> None:
    board = _board()
    # SPEC's lines until the processor has published any.
    assert board.concentration_lines(("account", "acct-a1")) == (0.20, 0.25)
    monitor = AlertMonitor(per_desk={"alpha": AlertThresholds(
        cluster_concentration_warning=1.6, cluster_concentration_critical=2.0)})
    for levels in monitor.levels(0):
        board.add_levels(levels)
    assert board.concentration_lines(("account", "acct-a1")) == (1.6, 2.0)
    assert board.concentration_lines(("desk", "alpha")) == (1.6, 2.0)
    board.add_frame(frame(account="acct-x", desk=None, clusters=(cluster("BTCUSDT", 0.3),)))
    assert board.concentration_lines(("account", "acct-x")) == (0.20, 0.25)
    # 31 % of equity is calm under a 2.0 line: green, and the bar spans 0..400 %.
    assert concentration_colour(0.31, (1.6, 2.0)) == "green"
    assert concentration_colour(0.31) == "red"
    bar = concentration_bar(0.31, (1.6, 2.0)).plain
    assert [i for i, c in enumerate(bar) if c == "│"] == [9, 11]
    assert "lines at each desk's warning and critical levels" in _text(board)
