output "ecr_repository_urls" {
  description = "Image repositories per service (the image.registry/image.repository of the charts)."
  value       = { for name, repository in aws_ecr_repository.service : name => repository.repository_url }
}

output "build_role_arn" {
  description = "GitHub Actions variable AWS_BUILD_ROLE_ARN."
  value       = aws_iam_role.build.arn
}

output "deploy_role_arns" {
  description = "GitHub Actions variable AWS_DEPLOY_ROLE_ARN, per GitHub environment."
  value       = { for env, role in aws_iam_role.deploy : env => role.arn }
}
