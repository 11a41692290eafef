output "address" {
  description = "Host name of the instance (the host of DATABASE_URL and QUERY_DATABASE_URL)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "PostgreSQL port."
  value       = aws_db_instance.this.port
}

output "db_name" {
  description = "The database name."
  value       = aws_db_instance.this.db_name
}

output "master_username" {
  description = "The master user (the schema owner the migrations run as)."
  value       = aws_db_instance.this.username
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret with the master user's password (managed and rotated by RDS)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "security_group_id" {
  description = "Security group of the instance."
  value       = aws_security_group.this.id
}
