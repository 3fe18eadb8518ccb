// Every `sgan` subcommand, registered in this order (help lists them so).
export { registerTrain as train } from './train';
export { registerSample as sample } from './sample';
export { registerTrainEncoder as trainEncoder, registerEvalEncoder as evalEncoder } from './encoder';
export { registerData as data } from './data';
export { registerExperiment as experiment } from './experiment';
export { registerBench as bench } from './bench';
export { registerInceptionScore as inceptionScore } from './inception-score';
export { registerEvaluate as evaluate } from './evaluate';
export { registerProbeEntropy as probeEntropy } from './probe-entropy';
