-- A sharing consent keeps the keyed hash of the member's research pseudonym,
-- computed when they consented (in their session), so a delivery finds their
-- receipts without moving their pseudonym out of the origin domain again.
-- Consents given before this column existed deliver nothing until renewed.
ALTER TABLE trust_sharing ADD COLUMN research_tag BLOB;
