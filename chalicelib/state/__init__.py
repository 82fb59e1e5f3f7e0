"""DynamoDB state: PynamoDB models (the schema), binding to a stage, and repositories."""
