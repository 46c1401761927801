-- The backend a post was first routed to, when a fallback produced it instead.
ALTER TABLE posts ADD COLUMN fallback_from text;
