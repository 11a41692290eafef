# prod: a NAT gateway per zone, Multi-AZ database with deletion protection, a cache replica.
environment        = "prod"
region             = "eu-west-1"
availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr           = "10.50.0.0/16"
single_nat_gateway = false

node_instance_types = ["m6i.large"]
node_min_size       = 3
node_max_size       = 9
node_desired_size   = 3

db_instance_class      = "db.m6g.large"
db_multi_az            = true
db_deletion_protection = true

redis_node_type          = "cache.m6g.large"
redis_num_cache_clusters = 2
# One primary is enough here; see docs/architecture.md §10 before turning cluster mode on.
redis_cluster_mode_enabled = false

query_api_base_url = "https://query-api.example.com"
