"""Exchange objects and credentials: market types, sandboxes, nothing secret in logs."""

from __future__ import annotations

import logging

import pytest
from exchange_recordings import API_KEY, CREDENTIALS, SECRET, RecordedSession, offline

from heatmap.ingest.exchanges import ExchangeCredentials, ExchangeSource, make_exchange


def test_credentials_never_show_in_repr_str_or_logs(caplog) -> None:
    with_password = ExchangeCredentials(api_key=API_KEY, secret=SECRET, password="pass-phrase-77")
    source = ExchangeSource(offline("bybit", CREDENTIALS), ["BTC/USDT:USDT"], "acct-1")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("credentials %s %r; source %s %r", CREDENTIALS,
                                       with_password, source, source)
    texts = [repr(CREDENTIALS), str(CREDENTIALS), f"{with_password}", repr(source), str(source),
             caplog.text]
    for text in texts:
        for secret in (API_KEY, SECRET, "pass-phrase-77"):
            assert secret not in text
    assert "acct-1" in repr(source)
    with pytest.raises(ValueError, match="non-empty"):
        ExchangeCredentials(api_key="", secret=SECRET)


def test_ccxt_request_logging_is_redacted(caplog) -> None:
    """ccxt logs request headers (Binance sends the key as X-MBX-APIKEY) at DEBUG."""
    session = RecordedSession({("GET", "/fapi/v2/positionRisk"):
                               "binance_usdm_position_risk_v2.json"})
    exchange = offline("binance", CREDENTIALS, session)
    with caplog.at_level(logging.DEBUG, logger="heatmap.ingest.exchanges"):
        exchange.fapiPrivateV2GetPositionRisk()
    assert "X-MBX-APIKEY" in caplog.text and "/fapi/v2/positionRisk" in caplog.text
    assert API_KEY not in caplog.text and SECRET not in caplog.text


def test_make_exchange_sets_market_types_and_rate_limits() -> None:
    binance, bybit, kraken = (make_exchange(name, CREDENTIALS)
                              for name in ("binance", "bybit", "kraken"))
    assert all(e.enableRateLimit for e in (binance, bybit, kraken))
    assert (binance.options["defaultType"], binance.options["defaultSubType"]) == ("swap", "linear")
    assert (bybit.options["defaultType"], bybit.options["defaultSubType"]) == ("swap", "linear")
    assert kraken.options["defaultType"] == "spot"
    assert binance.apiKey == API_KEY and binance.secret == SECRET
    assert make_exchange("kraken", None).apiKey in ("", None)


def test_sandbox_switches_to_testnet_and_kraken_has_none() -> None:
    assert "testnet" in make_exchange("bybit", None, sandbox=True).urls["api"]["public"]
    assert "testnet" in make_exchange("binance", None, sandbox=True).urls["api"]["fapiPublic"]
    with pytest.raises(ValueError, match="no sandbox"):
        make_exchange("kraken", None, sandbox=True)
    with pytest.raises(ValueError, match="unsupported"):
        make_exchange("okx", None)
