-- Review history, API keys, and the batch an item belongs to.
CREATE TABLE post_changes (
    id         bigserial PRIMARY KEY,
    post_id    uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    actor      text NOT NULL,
    action     text NOT NULL,
    changes    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX post_changes_post_idx ON post_changes (post_id, id);

CREATE TABLE kol_changes (
    id         bigserial PRIMARY KEY,
    kol_serial integer NOT NULL REFERENCES kols (serial) ON DELETE CASCADE,
    actor      text NOT NULL,
    action     text NOT NULL,
    changes    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL,
    key_sha256 text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

ALTER TABLE posts ADD COLUMN batch_id uuid;
ALTER TABLE posts ADD COLUMN item_no integer;
ALTER TABLE posts ADD COLUMN created_by text;
ALTER TABLE posts ADD CONSTRAINT posts_batch_item_key UNIQUE (batch_id, item_no);
CREATE INDEX posts_batch_idx ON posts (batch_id, item_no) WHERE batch_id IS NOT NULL;
