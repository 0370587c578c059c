"""Models by name, folder, single file or hub id; the built-in tiny-random; the Hugging Face cache."""
