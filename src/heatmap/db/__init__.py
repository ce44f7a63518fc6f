"""Storage: versioned migrations, the idempotent batch writer and the SQL API for desks."""
