"""Domain services: one package per domain, no HTTP in here.

Importing this package wires derived data to the writes it follows, in this one visible place:
search documents listen to photo changes, so every write made through a service updates the
search index in its own transaction, whether a request, a job or a script made it.
"""

from core.events import on_photos_changed, on_photos_deleted
from services.search import documents as _search_documents

on_photos_changed(_search_documents.write_documents)
on_photos_deleted(_search_documents.mark_deleted)
