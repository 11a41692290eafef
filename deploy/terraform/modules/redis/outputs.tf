output "primary_endpoint_address" {
  description = "Host name of the primary (null in cluster mode)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "endpoint_address" {
  description = "Host name the services connect to: the primary's, or in cluster mode the configuration endpoint's (the one in REDIS_URL)."
  value       = local.endpoint_address
}

output "cluster_mode_enabled" {
  description = "Whether the keyspace is sharded (Redis Cluster)."
  value       = var.cluster_mode_enabled
}

output "port" {
  description = "Redis port."
  value       = aws_elasticache_replication_group.this.port
}

output "redis_url_secret_arn" {
  description = "Secrets Manager secret holding the complete REDIS_URL (rediss://:TOKEN@HOST:6379/0)."
  value       = aws_secretsmanager_secret.redis_url.arn
}

output "security_group_id" {
  description = "Security group of the cache."
  value       = aws_security_group.this.id
}
