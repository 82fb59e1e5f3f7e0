"""siyu: serverless automation of a retail chain's WeChat private domain."""
