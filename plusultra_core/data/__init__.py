"""Market-data layer: the SQLite contract, schemas, loaders, generators and the partition store."""
