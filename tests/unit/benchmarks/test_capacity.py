"""The engine capacity measure and the boundary read from it (no timing asserted)."""

from __future__ import annotations

from benchmarks.capacity import CapacityCell, max_accounts, measure


def _cell(symbols: int, accounts: int, seconds: float) -> CapacityCell:
    return CapacityCell(symbols=symbols, accounts=accounts, positions_per_account=20,
                        frames=accounts * 3, bar_close_s=seconds, outputs_s=0.1, floor_s=0.01)


def test_the_boundary_follows_a_line_through_the_measured_accounts() -> None:
    cells = [_cell(200, 100, 0.3), _cell(200, 300, 0.7), _cell(200, 1000, 2.1),
             _cell(400, 100, 1.0)]
    assert max_accounts(cells, 200, budget_s=6.0) == 2950  # 0.002 s per account + 0.1 s
    assert max_accounts(cells, 200, budget_s=6.0, with_outputs=True) == 2900
    assert max_accounts(cells, 400, budget_s=6.0) is None  # one point is no line


def test_a_small_grid_point_measures_every_account_frame() -> None:
    cell = measure(symbols=30, accounts=5, positions_per_account=4, bars=1)
    assert cell.frames == 5 * 3  # every account, three timeframes
    assert cell.bar_close_s > 0 and cell.floor_s > 0 and cell.outputs_s > 0
    assert cell.with_outputs_s > cell.bar_close_s
