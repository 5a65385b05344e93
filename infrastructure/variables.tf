variable "region" {
  description = "AWS region with Lightsail, e.g. us-east-1 (close to Schwab's and Supabase's servers)."
  type        = string
  default     = "us-east-1"
}

variable "availability_zone" {
  description = "Availability zone for the instance; empty means the region's first zone (<region>a)."
  type        = string
  default     = ""
}

variable "name" {
  description = "Name of the instance; the static IP and key pair are named after it."
  type        = string
  default     = "market-streamer"
}

variable "bundle_id" {
  description = "Lightsail plan. nano_3_0 is the 512 MB / 2 vCPU / 20 GB plan with a public IPv4 address (all plans: aws lightsail get-bundles)."
  type        = string
  default     = "nano_3_0"
}

variable "blueprint_id" {
  description = "Operating system image: amazon_linux_2023 (user ec2-user), ubuntu_24_04 (user ubuntu) or debian_12 (user admin)."
  type        = string
  default     = "amazon_linux_2023"

  validation {
    condition     = contains(["amazon_linux_2023", "ubuntu_22_04", "ubuntu_24_04", "debian_12"], var.blueprint_id)
    error_message = "The bootstrap script supports amazon_linux_2023, ubuntu_22_04, ubuntu_24_04 and debian_12."
  }
}

variable "ssh_public_key_path" {
  description = "Public half of the SSH key deploy.sh will use (SSH_KEY is the private half)."
  type        = string
  default     = "~/.ssh/id_ed25519.pub"
}

variable "ssh_allowed_cidrs" {
  description = "IPv4 ranges allowed to reach SSH (port 22), e.g. [\"203.0.113.7/32\"] for your address only."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "ssh_allowed_ipv6_cidrs" {
  description = "IPv6 ranges allowed to reach SSH; set [] when ssh_allowed_cidrs restricts IPv4 to your address."
  type        = list(string)
  default     = ["::/0"]
}

variable "swap_size_mb" {
  description = "Swap file the first-boot script creates; a 512 MB box needs it for package installs and image loads."
  type        = number
  default     = 1024
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = { project = "market-streamer" }
}
