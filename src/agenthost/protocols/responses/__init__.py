"""Open Responses (spec 2026-04-24): wire models, decoding, encoding, compaction sealing."""
