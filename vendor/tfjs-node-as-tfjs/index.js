// danfojs-node requires '@tensorflow/tfjs-node' only for tensor ops; the pure-JS build serves.
module.exports = require('@tensorflow/tfjs');
