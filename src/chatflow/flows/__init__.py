"""The flow engine: runs deployed flows durably, on the database, through the services."""
