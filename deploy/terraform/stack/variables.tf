variable "environment" {
  description = "Environment name (dev, prod): part of every resource name; envs/<environment>/ holds its values."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment is the name of a directory under deploy/terraform/envs: dev or prod."
  }
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "app_namespace" {
  description = "Kubernetes namespace of the three services."
  type        = string
  default     = "contacts"
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.31"
}

variable "availability_zones" {
  description = "Availability zones of the environment's subnets."
  type        = list(string)
}

variable "vpc_cidr" {
  description = "CIDR of the VPC."
  type        = string
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per zone."
  type        = bool
}

variable "endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the Kubernetes API from the internet; empty = private only."
  type        = list(string)
  default     = []
}

variable "admin_role_arns" {
  description = "IAM roles given cluster-admin."
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  description = "Instance types of the nodes."
  type        = list(string)
}

variable "node_min_size" {
  description = "Minimum nodes."
  type        = number
}

variable "node_max_size" {
  description = "Maximum nodes."
  type        = number
}

variable "node_desired_size" {
  description = "Nodes at creation."
  type        = number
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "db_multi_az" {
  description = "RDS standby in a second zone."
  type        = bool
}

variable "db_deletion_protection" {
  description = "RDS deletion protection."
  type        = bool
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
}

variable "redis_num_cache_clusters" {
  description = "ElastiCache nodes (2+ = failover and Multi-AZ)."
  type        = number
}

variable "redis_cluster_mode_enabled" {
  description = "ElastiCache in cluster mode (Redis Cluster, redis_num_node_groups shards); off: one primary (docs/architecture.md §10, Scaling out)."
  type        = bool
  default     = false
  nullable    = false
}

variable "redis_num_node_groups" {
  description = "Shards in cluster mode (1 to 500); ignored when it is off."
  type        = number
  default     = 3
}

variable "redis_replicas_per_node_group" {
  description = "Replicas per shard in cluster mode (0 to 5; 1+ = failover and Multi-AZ); ignored when it is off."
  type        = number
  default     = 1
}

variable "sqs_visibility_timeout_seconds" {
  description = "Visibility timeout of the queue (SQS_VISIBILITY_TIMEOUT_S)."
  type        = number
  default     = 60
}

variable "worker_task_time_limit_seconds" {
  description = "The worker's task hard limit (TASK_TIME_LIMIT_S), shorter than the visibility timeout."
  type        = number
  default     = 45
}

variable "query_api_base_url" {
  description = "Public base URL of the query API (QUERY_API_BASE_URL of the command API)."
  type        = string
}
