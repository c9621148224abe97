"""PostgreSQL to committed transactions: the pgoutput protocol, its decoding, column values by
the to_jsonb rule, transaction assembly (spilling large ones to disk), and the stream loop."""
