"""The local stack and the tools that play WeChat's side of the wire (not deployed logic)."""
