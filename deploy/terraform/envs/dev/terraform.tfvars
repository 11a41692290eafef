# dev: one NAT gateway, single-AZ database without deletion protection, one cache node.
environment        = "dev"
region             = "eu-west-1"
availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr           = "10.40.0.0/16"
single_nat_gateway = true

node_instance_types = ["m6i.large"]
node_min_size       = 2
node_max_size       = 4
node_desired_size   = 2

db_instance_class      = "db.t4g.medium"
db_multi_az            = false
db_deletion_protection = false

redis_node_type          = "cache.t4g.small"
redis_num_cache_clusters = 1
# One primary is enough here; see docs/architecture.md §10 before turning cluster mode on.
redis_cluster_mode_enabled = false

query_api_base_url = "https://query-api.dev.example.com"
