"""Search: text (words and meaning), by example image, similar photos, near-duplicates, places."""
