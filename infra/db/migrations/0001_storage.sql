-- Raw storage of portfolio heat: inputs (prices, positions, equity), engine
-- outputs (frames, their positions and clusters, correlations), alerts and
-- dead letters. Plain PostgreSQL >= 15; the TimescaleDB layer (hypertables,
-- compression, retention, continuous aggregates) is applied on top when the
-- extension exists. Every table has a natural key that starts with the book
-- or symbol and includes ts, so re-writing the same input is a no-op
-- (ON CONFLICT DO NOTHING) and TimescaleDB accepts the key (it must contain
-- the time column).

CREATE SCHEMA IF NOT EXISTS heat;

CREATE TABLE heat.prices (
    ts          timestamptz      NOT NULL,
    symbol      text             NOT NULL,
    source      text             NOT NULL DEFAULT '',
    price       double precision NOT NULL CHECK (price > 0),
    bid         double precision,
    ask         double precision,
    PRIMARY KEY (symbol, source, ts)
);

CREATE TABLE heat.positions (
    ts          timestamptz      NOT NULL,
    account     text             NOT NULL,
    symbol      text             NOT NULL,
    strategy    text             NOT NULL DEFAULT '',
    qty         double precision NOT NULL,
    conviction  double precision CHECK (conviction BETWEEN 0 AND 1),
    entry_price double precision,
    leverage    double precision,
    desk        text,
    source      text,
    PRIMARY KEY (account, symbol, strategy, ts)
);

CREATE TABLE heat.account_equity (
    ts               timestamptz      NOT NULL,
    account          text             NOT NULL,
    equity           double precision NOT NULL,
    desk             text,
    maintenance_rate double precision,
    currency         text,
    PRIMARY KEY (account, ts)
);

-- A book is an account or a desk (a desk frame has account NULL).
CREATE TABLE heat.frames (
    ts                        timestamptz      NOT NULL,
    book_kind                 text             NOT NULL CHECK (book_kind IN ('account', 'desk')),
    book                      text             NOT NULL,
    timeframe                 text             NOT NULL,
    trigger                   text             NOT NULL CHECK (trigger IN ('bar', 'position', 'equity')),
    params_hash               text             NOT NULL,
    account                   text,
    desk                      text,
    equity                    double precision NOT NULL,
    gross                     double precision NOT NULL,
    net                       double precision NOT NULL,
    correlated_exposure       double precision NOT NULL,
    stress_exposure           double precision NOT NULL,
    effective_bets            double precision,
    hhi                       double precision,
    max_cluster_concentration double precision,
    liq_distance              double precision,
    var99_1d                  double precision NOT NULL,
    absorption_ratio          double precision,
    regime_break              double precision,
    stale                     boolean          NOT NULL,
    max_price_age_s           double precision,
    warming_up                boolean          NOT NULL,
    params                    jsonb            NOT NULL,
    PRIMARY KEY (book_kind, book, timeframe, ts, trigger, params_hash)
);
CREATE INDEX frames_ts_idx ON heat.frames (ts DESC);

CREATE TABLE heat.frame_positions (
    ts                timestamptz      NOT NULL,
    book_kind         text             NOT NULL,
    book              text             NOT NULL,
    timeframe         text             NOT NULL,
    trigger           text             NOT NULL,
    params_hash       text             NOT NULL,
    symbol            text             NOT NULL,
    strategy          text,
    qty               double precision NOT NULL,
    price             double precision NOT NULL,
    notional          double precision NOT NULL,
    share             double precision NOT NULL,
    heat              double precision NOT NULL,
    heat_share        double precision,
    risk_contribution double precision NOT NULL,
    cluster           text             NOT NULL,
    quadrant          text             NOT NULL,
    conviction        double precision,
    stale             boolean          NOT NULL,
    price_age_s       double precision NOT NULL,
    PRIMARY KEY (book_kind, book, timeframe, ts, trigger, params_hash, symbol)
);
CREATE INDEX frame_positions_symbol_idx ON heat.frame_positions (symbol, ts DESC);

CREATE TABLE heat.frame_clusters (
    ts                   timestamptz      NOT NULL,
    book_kind            text             NOT NULL,
    book                 text             NOT NULL,
    timeframe            text             NOT NULL,
    trigger              text             NOT NULL,
    params_hash          text             NOT NULL,
    cluster              text             NOT NULL,
    members              text[]           NOT NULL,
    gross                double precision NOT NULL,
    net                  double precision NOT NULL,
    concentration        double precision NOT NULL,
    stress_concentration double precision NOT NULL,
    liq_distance         double precision,
    liq_sigma            double precision,
    PRIMARY KEY (book_kind, book, timeframe, ts, trigger, params_hash, cluster)
);

-- One row per timeframe and bar: the symbols of the universe and the upper
-- triangle of their correlation matrix, row by row (k (k - 1) / 2 values).
-- Arrays, not one row per pair: 200 symbols make 19,900 pairs a bar, which as
-- rows would dwarf every other table; heat_api.correlation_matrix() unnests
-- one bar into rows when a desk asks.
CREATE TABLE heat.correlations (
    ts          timestamptz NOT NULL,
    timeframe   text        NOT NULL,
    params_hash text        NOT NULL,
    symbols     text[]      NOT NULL,
    rho         real[]      NOT NULL,
    PRIMARY KEY (timeframe, params_hash, ts),
    CHECK (cardinality(rho) = cardinality(symbols) * (cardinality(symbols) - 1) / 2)
);

CREATE TABLE heat.alerts (
    ts        timestamptz      NOT NULL,
    book_kind text             NOT NULL CHECK (book_kind IN ('account', 'desk')),
    book      text             NOT NULL,
    account   text,
    desk      text,
    timeframe text             NOT NULL,
    kind      text             NOT NULL,
    subject   text             NOT NULL,
    severity  text             NOT NULL,
    state     text             NOT NULL CHECK (state IN ('firing', 'resolved')),
    value     double precision,
    threshold double precision NOT NULL,
    message   text             NOT NULL,
    PRIMARY KEY (book_kind, book, timeframe, kind, subject, ts, state)
);
CREATE INDEX alerts_ts_idx ON heat.alerts (ts DESC);

-- Records that broke the message contract, keyed by where they sat in Kafka
-- (ts is the record's timestamp), so re-reading the topic adds nothing.
CREATE TABLE heat.deadletters (
    ts              timestamptz NOT NULL,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    reason          text        NOT NULL,
    record_key      bytea,
    payload         bytea       NOT NULL,
    PRIMARY KEY (topic, kafka_partition, kafka_offset, ts)
);
