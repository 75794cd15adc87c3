"""The embedding cache: a content-addressed disk store (store), its entry format (entry), memory-mapped packs (pack) and an in-memory store for serving (memory)."""
