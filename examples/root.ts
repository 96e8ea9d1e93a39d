/**
 * The project's root directory, with a trailing slash, whether the examples
 * run from examples/ (the tests, through ts-node) or dist/examples/ (npm start, the bench).
 */
export const PROJECT_ROOT = new URL('.', import.meta.url).pathname.replace(/(dist\/)?examples\/$/, '')
