"""The Elastic Load Balancing stand-in: target groups with health checks, load balancers that
proxy real HTTP to healthy targets with weights between groups, and their CloudWatch metrics."""
