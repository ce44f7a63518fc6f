"""Configuration of the bot API's access control, from ``HEAT_API_*`` environment
variables (``heat process`` and ``heat token`` read it)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Who may use the bot API, and how much of it.

    Parameters
    ----------
    api_tokens_file : Path or None
        ``HEAT_API_TOKENS_FILE``: the tokens file (``heat token create`` writes it).
        Unset: ``heat process`` runs, and its API answers 401 to every request.
    api_tokens_check_interval_s : float
        ``HEAT_API_TOKENS_CHECK_INTERVAL_S``: the server looks for a changed tokens
        file at most this often (a revoked token stops working within it).
    api_streams_per_token : int
        ``HEAT_API_STREAMS_PER_TOKEN``: concurrent ``/v1/stream`` connections per token;
        one more is refused with 429.
    api_whatif_rate_per_s, api_whatif_burst : float, int
        ``HEAT_API_WHATIF_RATE_PER_S`` / ``HEAT_API_WHATIF_BURST``: what-ifs per token,
        a token bucket refilled at the rate and holding at most the burst; past it 429
        with ``Retry-After``.
    api_stream_stall_timeout_s : float
        ``HEAT_API_STREAM_STALL_TIMEOUT_S``: a stream whose client does not read (its
        queue full, or one write pending) this long is closed.
    api_stream_ticket_ttl_s : float
        ``HEAT_API_STREAM_TICKET_TTL_S``: how long a stream ticket (for browsers, whose
        EventSource cannot send a header) may wait for its one use.
    """

    # An empty variable is an unset one (HEAT_API_TOKENS_FILE= must not mean ".").
    model_config = SettingsConfigDict(env_prefix="HEAT_", frozen=True, extra="ignore",
                                      env_ignore_empty=True)

    api_tokens_file: Path | None = None
    api_tokens_check_interval_s: float = Field(default=1.0, gt=0, le=60)
    api_streams_per_token: int = Field(default=4, ge=1)
    api_whatif_rate_per_s: float = Field(default=50.0, gt=0)
    api_whatif_burst: int = Field(default=100, ge=1)
    api_stream_stall_timeout_s: float = Field(default=10.0, gt=0)
    api_stream_ticket_ttl_s: float = Field(default=30.0, gt=0, le=300)
