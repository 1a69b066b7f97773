"""Search: text (words and meaning), by example image, similar photos, near-duplicates, places."""


def register() -> None:
    """Keep the search documents in step with every change to a photo (call once at start-up)."""
    from services.search import documents

    documents.register()
