"""The engine capacity measure and the boundary read from it (no timing asserted)."""

from __future__ import annotations

from benchmarks.capacity import (
    CapacityCell,
    SharedCell,
    max_accounts,
    max_accounts_shared,
    measure,
    measure_shared,
)


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


def test_engines_sharing_the_desks_frame_every_book_once_between_them() -> None:
    one = measure_shared(symbols=30, accounts=8, engines=1, desks=4, positions_per_account=4,
                         bars=1)
    two = measure_shared(symbols=30, accounts=8, engines=2, desks=4, positions_per_account=4,
                         bars=1)
    assert one.frames == two.frames == (8 + 4) * 3  # accounts and desks, three timeframes
    assert one.bar_close_s > 0 and two.bar_close_s > 0
    cells = [SharedCell(symbols=30, accounts=accounts, desks=4, engines=1, frames=0,
                        bar_close_s=accounts * 0.002) for accounts in (100, 300)]
    assert max_accounts_shared(cells, 1, budget_s=6.0) == 3000
    assert max_accounts_shared(cells, 2, budget_s=6.0) is None  # not measured
