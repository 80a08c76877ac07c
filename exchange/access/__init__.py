"""Access: the catalogue's datasets, purposes and grants, the policy and masking."""
