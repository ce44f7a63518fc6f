"""Heat pictures from the database (matplotlib), for reports and chat: ``heat snapshot``."""
