"""Storage: the database engine, the schema and its migrations."""

from bastion.storage.db import CommitThenRaise, Database
from bastion.storage.schema import metadata
from bastion.storage.types import UTCDateTime, new_id

__all__ = ["CommitThenRaise", "Database", "UTCDateTime", "metadata", "new_id"]
