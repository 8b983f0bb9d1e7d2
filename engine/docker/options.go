package docker

// OptionICC is the bridge option for traffic between containers of a network.
const OptionICC = "com.docker.network.bridge.enable_icc"
