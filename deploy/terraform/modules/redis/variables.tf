variable "name" {
  description = "Name of the replication group and of its companions."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cache."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the cache subnet group."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed to connect on 6379 (the EKS nodes')."
  type        = list(string)
}

variable "engine_version" {
  description = "Redis OSS version."
  type        = string
  default     = "7.1"
}

variable "node_type" {
  description = "Cache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "num_cache_clusters" {
  description = "Nodes (primary + replicas). Two or more turn on automatic failover and Multi-AZ."
  type        = number
  default     = 2

  validation {
    condition     = var.num_cache_clusters >= 1 && var.num_cache_clusters <= 6
    error_message = "num_cache_clusters must be between 1 and 6."
  }
}

variable "cluster_mode_enabled" {
  description = "Redis Cluster mode: the keyspace sharded over num_node_groups primaries, for when one primary is outgrown (docs/architecture.md §10, Scaling out). The services must run with REDIS_CLUSTER_MODE=true (the stack's *_helm_values outputs set it). Read the plan before switching an existing group: the cache can be rebuilt from PostgreSQL, operation statuses and idempotency records (24 h) cannot."
  type        = bool
  default     = false
  nullable    = false

  validation {
    condition     = !var.cluster_mode_enabled || tonumber(split(".", var.engine_version)[0]) >= 7
    error_message = "cluster_mode_enabled needs engine_version 7 or later (the parameter group default.redis<major>.cluster.on)."
  }
}

variable "num_node_groups" {
  description = "Shards (primaries) in cluster mode; ignored when cluster_mode_enabled is false. Can be changed online (resharding moves hash slots)."
  type        = number
  default     = 3

  validation {
    condition     = var.num_node_groups >= 1 && var.num_node_groups <= 500 && floor(var.num_node_groups) == var.num_node_groups
    error_message = "num_node_groups must be a whole number between 1 and 500."
  }
}

variable "replicas_per_node_group" {
  description = "Replicas of each shard in cluster mode (1+ turn on Multi-AZ); ignored when cluster_mode_enabled is false."
  type        = number
  default     = 1

  validation {
    condition     = var.replicas_per_node_group >= 0 && var.replicas_per_node_group <= 5 && floor(var.replicas_per_node_group) == var.replicas_per_node_group
    error_message = "replicas_per_node_group must be a whole number between 0 and 5."
  }

  validation {
    condition     = var.num_node_groups * (1 + var.replicas_per_node_group) <= 500
    error_message = "A replication group holds at most 500 nodes: num_node_groups x (1 + replicas_per_node_group)."
  }
}

variable "snapshot_retention_limit" {
  description = "Days of snapshots. The cache holds nothing that cannot be rebuilt but operation statuses and idempotency records."
  type        = number
  default     = 1
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
