-- Batches and their items. PostgreSQL, not Redis, is the source of truth for item state.
CREATE TABLE batches (
    id          uuid PRIMARY KEY,
    status      text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'done', 'cancelled')),
    total       integer NOT NULL CHECK (total > 0),
    spec        jsonb NOT NULL,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE TABLE batch_items (
    batch_id     uuid NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    item_no      integer NOT NULL CHECK (item_no >= 0),
    request      jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    post_id      uuid NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    job_id       text,
    worker       text,
    error        text,
    heartbeat_at timestamptz,
    started_at   timestamptz,
    finished_at  timestamptz,
    PRIMARY KEY (batch_id, item_no)
);
CREATE INDEX batch_items_running_idx ON batch_items (heartbeat_at) WHERE state = 'running';
