variable "name" {
  description = "Name of the cluster and of its VPC."
  type        = string
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.31"
}

variable "vpc_cidr" {
  description = "CIDR of the VPC; split into private, public (load balancers and NAT only) and data subnets."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones of the subnets, named explicitly so the network never changes when AWS adds a zone."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "Give at least two availability zones (EKS and Multi-AZ RDS need them)."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for the VPC (cheaper) instead of one per zone (survives a zone outage)."
  type        = bool
  default     = false
}

variable "endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the Kubernetes API from the internet. Empty (the default): private endpoint only."
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
  default     = ["m6i.large"]
}

variable "node_min_size" {
  description = "Minimum nodes."
  type        = number
  default     = 2
}

variable "node_max_size" {
  description = "Maximum nodes."
  type        = number
  default     = 6
}

variable "node_desired_size" {
  description = "Nodes at creation."
  type        = number
  default     = 3
}

variable "admin_role_arns" {
  description = "IAM roles given cluster-admin (the platform team's)."
  type        = list(string)
  default     = []
}

variable "deploy_role_arns" {
  description = "IAM roles given admin of the application namespace only (CI's deploy roles)."
  type        = list(string)
  default     = []
}

variable "app_namespace" {
  description = "Namespace of the contacts services."
  type        = string
  default     = "contacts"
}

variable "service_accounts" {
  description = "IRSA roles to create: key = role suffix; namespace and service account the role trusts; an inline policy (JSON) or null for a role with no permission."
  type = map(object({
    namespace       = string
    service_account = string
    policy_json     = optional(string)
  }))
  default = {}
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
