variable "region" {
  description = "AWS region of the ECR repositories."
  type        = string
  default     = "eu-west-1"
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows may assume the CI roles."
  type        = string
}

variable "environments" {
  description = "Deployment environments; GitHub environments of the same names gate the deploy roles."
  type        = list(string)
  default     = ["dev", "prod"]
}

variable "services" {
  description = "One ECR repository per service image."
  type        = list(string)
  default     = ["command-api", "query-api", "contact-worker"]
}
