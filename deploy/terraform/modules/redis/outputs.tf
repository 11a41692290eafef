output "primary_endpoint_address" {
  description = "Host name of the primary."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
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
