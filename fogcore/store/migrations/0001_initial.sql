-- 0001: accounts, sessions, API keys, the node directory, VRF epoch proofs, benchmark
-- runs and the audit log. Times are UTC seconds since the Unix epoch (DOUBLE PRECISION).
-- Placeholders: @ID@ (auto-increasing integer primary key), @BYTES@ (byte string),
-- @JSON@ (a JSON document).

CREATE TABLE users (
    id            @ID@,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
);

CREATE TABLE sessions (
    token_hash @BYTES@ PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE api_keys (
    id           @ID@,
    key_hash     @BYTES@ NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    name         TEXT NOT NULL,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    created_at   DOUBLE PRECISION NOT NULL,
    expires_at   DOUBLE PRECISION,
    revoked_at   DOUBLE PRECISION,
    last_used_at DOUBLE PRECISION
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

CREATE TABLE node_descriptors (
    node_id      TEXT PRIMARY KEY,
    identity_key @BYTES@ NOT NULL UNIQUE,
    routing_key  @BYTES@ NOT NULL,
    layer        INTEGER NOT NULL CHECK (layer >= 0),
    format       TEXT NOT NULL CHECK (format IN ('sphinx', 'kem')),
    address      TEXT NOT NULL,
    descriptor   @BYTES@ NOT NULL,
    signature    @BYTES@ NOT NULL,
    info         @JSON@ NOT NULL,
    published_at DOUBLE PRECISION NOT NULL,
    refreshed_at DOUBLE PRECISION NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL
);
CREATE INDEX node_descriptors_layer_idx ON node_descriptors (layer, node_id);
CREATE INDEX node_descriptors_expires_idx ON node_descriptors (expires_at);

CREATE TABLE vrf_epoch_proofs (
    node_id      TEXT NOT NULL REFERENCES node_descriptors (node_id) ON DELETE CASCADE,
    epoch        BIGINT NOT NULL CHECK (epoch >= 0),
    proof        @BYTES@ NOT NULL,
    beta         @BYTES@ NOT NULL,
    published_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (node_id, epoch)
);
CREATE INDEX vrf_epoch_proofs_epoch_idx ON vrf_epoch_proofs (epoch);

CREATE TABLE bench_runs (
    id          TEXT PRIMARY KEY,
    suite       TEXT NOT NULL,
    status      TEXT NOT NULL
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'stopped')),
    progress    BIGINT NOT NULL DEFAULT 0 CHECK (progress >= 0),
    total       BIGINT NOT NULL DEFAULT 0 CHECK (total >= 0),
    params      @JSON@ NOT NULL,
    result      @JSON@,
    error       TEXT,
    created_at  DOUBLE PRECISION NOT NULL,
    started_at  DOUBLE PRECISION,
    finished_at DOUBLE PRECISION
);
CREATE INDEX bench_runs_created_idx ON bench_runs (created_at);
CREATE INDEX bench_runs_status_idx ON bench_runs (status);

CREATE TABLE audit_log (
    id         @ID@,
    at         DOUBLE PRECISION NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT,
    request_id TEXT,
    detail     @JSON@ NOT NULL
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);
