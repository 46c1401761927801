-- Posts, their variants and the LLM calls that paid for them.
CREATE TABLE kols (
    serial       integer PRIMARY KEY,
    nickname     text NOT NULL,
    persona_type text NOT NULL,
    profile      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE posts (
    id                 uuid PRIMARY KEY,
    kol_serial         integer NOT NULL REFERENCES kols (serial),
    stock_code         text NOT NULL,
    stock_name         text NOT NULL,
    posting_type       text NOT NULL
        CHECK (posting_type IN ('interaction', 'analysis', 'personalized')),
    max_words          integer NOT NULL CHECK (max_words > 0),
    variants_requested integer NOT NULL CHECK (variants_requested > 0),
    status             text NOT NULL
        CHECK (status IN ('generating', 'draft', 'approved', 'published', 'rejected',
                          'failed', 'cancelled')),
    selected_variant   integer,
    title              text,
    body               text,
    backend            text NOT NULL,
    model              text NOT NULL,
    facts              jsonb NOT NULL DEFAULT '{}',
    failure_reason     text,
    timings_ms         jsonb NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX posts_created_idx ON posts (created_at DESC, id);
CREATE INDEX posts_status_idx ON posts (status, created_at DESC);
CREATE INDEX posts_kol_idx ON posts (kol_serial, created_at DESC);
CREATE INDEX posts_stock_idx ON posts (stock_code, created_at DESC);

CREATE TABLE post_variants (
    post_id       uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    variant       integer NOT NULL CHECK (variant >= 0),
    title         text NOT NULL DEFAULT '',
    body          text NOT NULL DEFAULT '',
    raw_text      text NOT NULL DEFAULT '',
    checks        jsonb NOT NULL DEFAULT '[]',
    score         double precision,
    finish_reason text,
    error         text,
    tokens        integer NOT NULL DEFAULT 0,
    PRIMARY KEY (post_id, variant)
);

CREATE TABLE llm_calls (
    id                bigserial PRIMARY KEY,
    post_id           uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    backend           text NOT NULL,
    model             text NOT NULL,
    variants          integer[] NOT NULL,
    prompt_tokens     integer NOT NULL,
    completion_tokens integer NOT NULL,
    cached_tokens     integer NOT NULL,
    estimated         boolean NOT NULL,
    cost_usd          numeric(14, 8) NOT NULL,
    ttft_ms           double precision,
    duration_ms       double precision NOT NULL,
    attempts          integer NOT NULL,
    error             text,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX llm_calls_post_idx ON llm_calls (post_id);
