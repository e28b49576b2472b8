"""marshmallow schemas: API requests and responses, problem documents, events, DVCQG payloads."""
