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
