variable "identifier" {
  description = "Name of the DB instance and of its companions (subnet group, security group, key)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the instance."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the DB subnet group (one per availability zone)."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed to connect on 5432 (the EKS nodes')."
  type        = list(string)
}

variable "engine_version" {
  description = "PostgreSQL version."
  type        = string
  default     = "16.4"
}

variable "parameter_group_family" {
  description = "Family of the parameter group, matching engine_version."
  type        = string
  default     = "postgres16"
}

variable "instance_class" {
  description = "Instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "allocated_storage" {
  description = "Initial storage in GiB."
  type        = number
  default     = 20
}

variable "max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 200
}

variable "db_name" {
  description = "The database the services use (the path of DATABASE_URL)."
  type        = string
  default     = "contacts"
}

variable "master_username" {
  description = "Master user; its password is generated and rotated by RDS in Secrets Manager."
  type        = string
  default     = "contacts_admin"
}

variable "multi_az" {
  description = "Standby in a second availability zone."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse to delete the instance."
  type        = bool
  default     = true
}

variable "backup_retention_period" {
  description = "Days of automated backups."
  type        = number
  default     = 7
}

variable "monitoring_interval" {
  description = "Seconds between Enhanced Monitoring samples (0 turns it off)."
  type        = number
  default     = 60
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
