"""Tables and sessions. Importing the package registers every table on `Base.metadata`."""

from db import models, search_models
from db.base import Base

__all__ = ["Base", "models", "search_models"]
